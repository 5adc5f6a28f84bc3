# Shared by vagrant/Vagrantfile (one VM) and vagrant/lb/Vagrantfile (the load-balanced site): the
# settings you may change through the environment, the checks that turn bad input into one clear
# message, and what every VM gets (root login with your public key; its SSH host keys recorded in
# .vagrant/known_hosts next to the Vagrantfile, where the inventories look for them).
#
#   PROVISION_VAGRANT_NETWORK  the VMs' private network, default 192.168.56.0/24 (VirtualBox's
#                              host-only range); each VM keeps its host number (.10, .20-.26)
#   PROVISION_VAGRANT_BOX      the box, default debian/trixie64
#   PROVISION_VAGRANT_PUBKEY   the public key root accepts, default ~/.ssh/id_ed25519.pub, else
#                              ~/.ssh/id_ecdsa.pub, else ~/.ssh/id_rsa.pub
require "ipaddr"
require "socket"

module ProvisionVagrant
  # A Vagrant error: Vagrant prints its message alone, without a backtrace.
  class Error < Vagrant::Errors::VagrantError
    def initialize(message)
      @provision_message = message
      super()
    end

    def error_message
      @provision_message
    end
  end

  PROVIDERS = %w[virtualbox libvirt].freeze

  def self.network
    text = ENV.fetch("PROVISION_VAGRANT_NETWORK", "192.168.56.0/24")
    net = IPAddr.new(text)
    raise ArgumentError unless net.ipv4? && net.prefix <= 24 && net.prefix >= 8
    net
  rescue ArgumentError
    raise Error, "PROVISION_VAGRANT_NETWORK=#{text.inspect}: not an IPv4 network of at least " \
                 "256 addresses such as 192.168.56.0/24"
  end

  # The address with this host number in the VMs' network (10 -> 192.168.56.10).
  def self.address(host)
    IPAddr.new(network.to_i + host, Socket::AF_INET).to_s
  end

  def self.pubkey_path
    given = ENV["PROVISION_VAGRANT_PUBKEY"]
    return File.expand_path(given) if given && !given.empty?

    %w[id_ed25519 id_ecdsa id_rsa].map { |k| File.expand_path("~/.ssh/#{k}.pub") }
                                  .find { |p| File.file?(p) }
  end

  def self.pubkey(vagrantfile)
    path = pubkey_path
    if path.nil?
      raise Error, "#{vagrantfile}: no public key to let root log in with: none of " \
                   "~/.ssh/id_ed25519.pub, id_ecdsa.pub, id_rsa.pub exists. Make one with " \
                   "`ssh-keygen -t ed25519`, or name yours in PROVISION_VAGRANT_PUBKEY."
    end
    key = File.file?(path) ? File.read(path).strip : ""
    unless key.match?(/\A(ssh-|ecdsa-|sk-)\S+ \S+/) && !key.include?("\n")
      raise Error, "#{vagrantfile}: #{path} is not a public key (one line, `ssh-ed25519 AAAA...`)"
    end
    key
  end

  # The provider `vagrant up` will ask for, or nil when Vagrant is to choose.
  def self.requested_provider(argv)
    argv.each_with_index do |arg, i|
      return arg.split("=", 2)[1] if arg.start_with?("--provider=")
      return argv[i + 1] if arg == "--provider"
    end
    ENV["VAGRANT_DEFAULT_PROVIDER"]
  end

  def self.usable?(provider)
    case provider
    when "virtualbox" then !Vagrant::Util::Which.which("VBoxManage").nil?
    when "libvirt" then Vagrant.plugin("2").manager.providers.key?(:libvirt)
    else false
    end
  end

  INSTALL = "VirtualBox (https://www.virtualbox.org), or libvirt with Vagrant's libvirt " \
            "provider (Debian/Ubuntu: `sudo apt install vagrant-libvirt libvirt-daemon-system`, " \
            "then `sudo adduser $USER libvirt` and log in again; elsewhere " \
            "`vagrant plugin install vagrant-libvirt`)".freeze

  # Before `vagrant up` looks for its provider: one message naming what to install.
  def self.check_provider(vagrantfile, argv)
    return unless argv.first == "up"

    wanted = requested_provider(argv)
    if wanted.nil?
      return if PROVIDERS.any? { |p| usable?(p) }

      raise Error, "#{vagrantfile}: no provider to run the VMs with. Install #{INSTALL}."
    end
    unless PROVIDERS.include?(wanted)
      raise Error, "#{vagrantfile}: provider #{wanted.inspect} is not one this Vagrantfile " \
                   "sets up; use --provider=virtualbox or --provider=libvirt"
    end
    return if usable?(wanted)

    what = wanted == "virtualbox" ? "VirtualBox (VBoxManage is not on the PATH)" :
                                    "Vagrant's libvirt provider (the vagrant-libvirt plugin)"
    raise Error, "#{vagrantfile}: --provider=#{wanted}, but #{what} is not installed. " \
                 "Install #{INSTALL}."
  end

  # Whether something already answers at `ip`: an address of this machine, or a host on a
  # network this machine is on (SSH or HTTP answers or refuses). Nothing is sent off-link.
  def self.taken_by(ip)
    return "this machine" if Socket.ip_address_list.any? { |a| a.ip_address == ip }

    on_link = Socket.getifaddrs.any? do |ifa|
      ifa.addr&.ipv4? && ifa.netmask &&
        IPAddr.new("#{ifa.addr.ip_address}/#{ifa.netmask.ip_address}").include?(ip)
    end
    return nil unless on_link

    [22, 80].each do |port|
      begin
        Socket.tcp(ip, port, connect_timeout: 2).close
        return "a host answering on port #{port}"
      rescue Errno::ECONNREFUSED
        return "a host (port #{port} refused)"
      rescue SystemCallError, SocketError
        next
      end
    end
    nil
  end

  # known_hosts lines for `ip` replaced by `lines` (none: removed), under a lock (machines come
  # up in parallel).
  def self.update_known_hosts(env, ip, lines)
    path = env.local_data_path.join("known_hosts")
    File.open(path, File::RDWR | File::CREAT, 0o644) do |f|
      f.flock(File::LOCK_EX)
      kept = f.read.lines.reject { |l| l.split.first == ip }
      f.rewind
      f.truncate(0)
      f.write((kept + lines).join)
    end
  end

  def self.record_host_keys(env, machine, ip)
    out = +""
    machine.communicate.execute("cat /etc/ssh/ssh_host_*_key.pub") do |type, data|
      out << data if type == :stdout
    end
    lines = out.lines.map(&:split).select { |f| f.length >= 2 }.map { |f| "#{ip} #{f[0]} #{f[1]}\n" }
    update_known_hosts(env, ip, lines)
  end

  ROOT_KEY = <<~'SHELL'.freeze
    set -eu
    install -d -m 700 /root/.ssh
    touch /root/.ssh/authorized_keys
    chmod 600 /root/.ssh/authorized_keys
    grep -qxF "$PUBKEY" /root/.ssh/authorized_keys || echo "$PUBKEY" >> /root/.ssh/authorized_keys
  SHELL

  # One VM: `host` is its host number in the network, `vagrantfile` names the file in messages.
  def self.machine(config, vagrantfile:, name:, host:, memory:, cpus: 2)
    ip = address(host)
    config.vm.box = ENV.fetch("PROVISION_VAGRANT_BOX", "debian/trixie64")
    config.vm.hostname = name
    config.vm.network "private_network", ip: ip, libvirt__forward_mode: "none"
    config.vm.synced_folder ".", "/vagrant", disabled: true
    config.vm.provider("virtualbox") { |vb| vb.memory, vb.cpus = memory, cpus }
    config.vm.provider("libvirt") { |lv| lv.memory, lv.cpus = memory, cpus }

    config.trigger.before :up, :provision do |t|
      t.ruby do |_env, m|
        pubkey(vagrantfile)
        holder = m.id.nil? && taken_by(ip)
        if holder
          raise Error, "#{vagrantfile}: #{name}'s address #{ip} is taken (#{holder}). Stop " \
                       "what uses it, or choose another network: PROVISION_VAGRANT_NETWORK=" \
                       "192.168.57.0/24 vagrant up (and the same addresses in the inventory)."
        end
      end
    end
    key = pubkey_path && File.file?(pubkey_path) ? File.read(pubkey_path).strip : ""
    config.vm.provision "root-ssh-key", type: "shell", env: { "PUBKEY" => key }, inline: ROOT_KEY
    config.trigger.after :up, :provision, :reload do |t|
      t.ruby { |env, m| record_host_keys(env, m, ip) }
    end
    config.trigger.after :destroy do |t|
      t.ruby { |env, _m| update_known_hosts(env, ip, []) }
    end
  end
end
